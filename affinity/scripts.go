package affinity

import "github.com/redis/go-redis/v9"

// The Lua scripts below are the only writers of the shared state; each runs
// atomically in Redis, with Redis's clock (TIME), so that instances with
// skewed clocks agree on who is alive and when a move ends.
//
// The user hash {pfx}u:USER holds
//
//	m        the member the user is assigned to
//	v, t     while a move runs: its deadline (ms) and its id
//	s:INST   the user's sessions on instance INST
//	p:LEASE  a login in progress (Assign to SessionStart or SessionEnd):
//	         its deadline (ms), Config.Lease after Assign
//
// and has no TTL while a live instance holds a session, else it expires,
// never before the last login in progress has lapsed. A login in progress
// holds the user on its member as a session does: without it, a member
// marked down while a login ran there would let another instance put the
// user on a second member before the first login's session was counted.

// luaPrelude is shared by the scripts: Redis's clock in ms, the user's
// sessions on instances that are alive, and whether a move is running.
const luaPrelude = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- holders returns the user's sessions on live instances, its logins in
-- progress, and the latest of their deadlines; lapsed logins are removed.
local function holders(ukey, instkey, now)
  local h = redis.call('HGETALL', ukey)
  local n, p, last = 0, 0, 0
  for i = 1, #h, 2 do
    local kind = string.sub(h[i], 1, 2)
    if kind == 's:' then
      local sc = redis.call('ZSCORE', instkey, string.sub(h[i], 3))
      if sc and tonumber(sc) >= now then n = n + tonumber(h[i + 1]) end
    elseif kind == 'p:' then
      local dl = tonumber(h[i + 1]) or 0
      if dl > now then
        p = p + 1
        if dl > last then last = dl end
      else
        redis.call('HDEL', ukey, h[i])
      end
    end
  end
  return n, p, last
end
local function held(ukey, instkey, now)
  local n, p = holders(ukey, instkey, now)
  return n + p
end
local function moving(ukey, now)
  local v = redis.call('HGET', ukey, 'v')
  return v and tonumber(v) > now
end
-- expire_if_idle starts the expiry of an assignment no live session
-- holds: ms, or longer while a login in progress has not lapsed. It
-- returns the live sessions (0 without an assignment).
local function expire_if_idle(ukey, instkey, now, ms)
  if redis.call('HEXISTS', ukey, 'm') == 0 then return 0 end
  local n, p, last = holders(ukey, instkey, now)
  if n == 0 then redis.call('PEXPIRE', ukey, math.max(tonumber(ms), last - now)) end
  return n
end
-- begin_login records a login in progress until now + ms.
local function begin_login(ukey, field, now, ms)
  redis.call('HSET', ukey, field, now + tonumber(ms))
  local pttl = redis.call('PTTL', ukey)
  if pttl >= 0 and pttl < tonumber(ms) then redis.call('PEXPIRE', ukey, ms) end
end
`

// scriptAssign is the hit path: one round trip. A hit on a member that is
// up, or that holds a session or login of the user, records the login.
// KEYS: user, inst, down. ARGV: lease ms, the login's field (p:LEASE).
// → {'moving', m} | {'miss'} | {'hit', m, sessions and logins, member is down}
var scriptAssign = redis.NewScript(luaPrelude + `
local now = now_ms()
local m = redis.call('HGET', KEYS[1], 'm')
if moving(KEYS[1], now) then return {'moving', m or ''} end
if not m then return {'miss'} end
local n = held(KEYS[1], KEYS[2], now)
local down = redis.call('SISMEMBER', KEYS[3], m)
if n > 0 or down == 0 then begin_login(KEYS[1], ARGV[2], now, ARGV[1]) end
return {'hit', m, n, down}
`)

// scriptState reads what a new assignment depends on.
// KEYS: inst, weight, down. ARGV: key prefix.
// → {{member, live sessions, ...}, {member, weight override, ...}, {down member, ...}}
var scriptState = redis.NewScript(luaPrelude + `
local now = now_ms()
local loads = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  local h = redis.call('HGETALL', ARGV[1] .. 'load:' .. id)
  for i = 1, #h, 2 do loads[h[i]] = (loads[h[i]] or 0) + tonumber(h[i + 1]) end
end
local flat = {}
for k, v in pairs(loads) do flat[#flat + 1] = k; flat[#flat + 1] = v end
return {flat, redis.call('HGETALL', KEYS[2]), redis.call('SMEMBERS', KEYS[3])}
`)

// scriptClaim writes a new assignment unless another instance won the
// race (or a session or login holds the user), a move runs, or the store
// is warming up after losing its data; either way the login is recorded.
// KEYS: user, inst, epoch. ARGV: member, replaced member or ”, expire ms,
// warm-up ms, lease ms, the login's field (p:LEASE).
// → {'claimed', m} | {'hit', m} | {'moving'} | {'warming'}
var scriptClaim = redis.NewScript(luaPrelude + `
local now = now_ms()
local e = redis.call('GET', KEYS[3])
if not e then redis.call('SET', KEYS[3], now); e = now end
if now - tonumber(e) < tonumber(ARGV[4]) then return {'warming'} end
if moving(KEYS[1], now) then return {'moving'} end
redis.call('HDEL', KEYS[1], ARGV[6]) -- scriptAssign's record of this login, if any
local m = redis.call('HGET', KEYS[1], 'm')
if m and (m ~= ARGV[2] or held(KEYS[1], KEYS[2], now) > 0) then
  begin_login(KEYS[1], ARGV[6], now, ARGV[5])
  return {'hit', m}
end
redis.call('HSET', KEYS[1], 'm', ARGV[1])
expire_if_idle(KEYS[1], KEYS[2], now, ARGV[3])
begin_login(KEYS[1], ARGV[6], now, ARGV[5])
return {'claimed', ARGV[1]}
`)

// scriptStart counts a session that logged in, in place of its login.
// KEYS: user, inst, ix, load. ARGV: instance, member, user, the login's field.
// → 'ok' | 'notlive' | 'moving' | 'lost'
var scriptStart = redis.NewScript(luaPrelude + `
local now = now_ms()
local sc = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not sc or tonumber(sc) < now then return 'notlive' end
if moving(KEYS[1], now) then return 'moving' end
if redis.call('HGET', KEYS[1], 'm') ~= ARGV[2] then return 'lost' end
redis.call('HDEL', KEYS[1], ARGV[4])
redis.call('HINCRBY', KEYS[1], 's:' .. ARGV[1], 1)
redis.call('PERSIST', KEYS[1])
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
return 'ok'
`)

// scriptEnd uncounts a session; the last one starts the expiry.
// KEYS: user, inst, ix, load. ARGV: instance, member, user, expire ms.
var scriptEnd = redis.NewScript(luaPrelude + `
local now = now_ms()
local f = 's:' .. ARGV[1]
if redis.call('HEXISTS', KEYS[1], f) == 1 then
  if redis.call('HINCRBY', KEYS[1], f, -1) <= 0 then
    redis.call('HDEL', KEYS[1], f)
    redis.call('SREM', KEYS[3], ARGV[3])
  end
  expire_if_idle(KEYS[1], KEYS[2], now, ARGV[4])
end
if redis.call('HINCRBY', KEYS[4], ARGV[2], -1) <= 0 then redis.call('HDEL', KEYS[4], ARGV[2]) end
return 'ok'
`)

// scriptAbandon forgets a login that ended without a session.
// KEYS: user, inst. ARGV: the login's field, expire ms.
var scriptAbandon = redis.NewScript(luaPrelude + `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then expire_if_idle(KEYS[1], KEYS[2], now_ms(), ARGV[2]) end
return 'ok'
`)

// scriptHeartbeat keeps an instance alive. An instance whose entry is gone
// (Redis lost its data) or expired (it was cut off; others may be sweeping
// it) is told to rejoin under a new id, never revived.
// KEYS: inst, epoch. ARGV: instance, ttl ms, '1' on the first beat of an id.
// → 'ok' | 'rejoin'
var scriptHeartbeat = redis.NewScript(luaPrelude + `
local now = now_ms()
if not redis.call('GET', KEYS[2]) then redis.call('SET', KEYS[2], now) end
local sc = redis.call('ZSCORE', KEYS[1], ARGV[1])
if ARGV[3] ~= '1' and (not sc or tonumber(sc) < now) then return 'rejoin' end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 'ok'
`)

// scriptResync writes an instance's own count of a user's sessions
// (absolute), after a write was lost or the instance rejoined.
// KEYS: user, inst, ix. ARGV: instance, member, user, count, expire ms.
// → 'ok' | 'conflict' (the user is assigned elsewhere now)
var scriptResync = redis.NewScript(luaPrelude + `
local now = now_ms()
local f = 's:' .. ARGV[1]
if tonumber(ARGV[4]) == 0 then
  if redis.call('HDEL', KEYS[1], f) == 1 then expire_if_idle(KEYS[1], KEYS[2], now, ARGV[5]) end
  redis.call('SREM', KEYS[3], ARGV[3])
  return 'ok'
end
local m = redis.call('HGET', KEYS[1], 'm')
if not m then redis.call('HSET', KEYS[1], 'm', ARGV[2]) elseif m ~= ARGV[2] then return 'conflict' end
redis.call('HSET', KEYS[1], f, ARGV[4])
redis.call('PERSIST', KEYS[1])
redis.call('SADD', KEYS[3], ARGV[3])
return 'ok'
`)

// scriptSweep removes up to a batch of a dead instance's sessions; the
// instance's entry goes when its index is empty. SPOP makes each user
// handled once even with several instances sweeping.
// KEYS: inst. ARGV: key prefix, batch, expire ms. → number of dead instances seen (0 or 1)
var scriptSweep = redis.NewScript(luaPrelude + `
local now = now_ms()
local d = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, 1)
if #d == 0 then return 0 end
local id = d[1]
local ix = ARGV[1] .. 'ix:' .. id
for _, u in ipairs(redis.call('SPOP', ix, tonumber(ARGV[2]))) do
  local uk = ARGV[1] .. 'u:' .. u
  if redis.call('HDEL', uk, 's:' .. id) == 1 then expire_if_idle(uk, KEYS[1], now, ARGV[3]) end
end
if redis.call('SCARD', ix) == 0 then
  redis.call('ZREM', KEYS[1], id)
  redis.call('DEL', ARGV[1] .. 'load:' .. id)
end
return 1
`)

// scriptMoveBegin marks a user as moving until a deadline; the key lives
// at least that long, so that no instance can claim the user meanwhile.
// KEYS: user, inst. ARGV: deadline ms from now, move id.
// → {'moving'} | {'ok', current member or ”, {live instance, ...}}
var scriptMoveBegin = redis.NewScript(luaPrelude + `
local now = now_ms()
if moving(KEYS[1], now) then return {'moving'} end
local m = redis.call('HGET', KEYS[1], 'm') or ''
redis.call('HSET', KEYS[1], 'v', now + tonumber(ARGV[1]), 't', ARGV[2])
local pttl = redis.call('PTTL', KEYS[1])
if pttl >= 0 and pttl < tonumber(ARGV[1]) or m == '' and pttl == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return {'ok', m, redis.call('ZRANGEBYSCORE', KEYS[2], now, '+inf')}
`)

// scriptMoveEnd assigns the new member, if the move is still ours and its
// deadline has not passed: past it, logins went to the old member again,
// and the move is dropped.
// KEYS: user, inst. ARGV: move id, member, expire ms. → 'ok' | 'superseded' | 'expired'
var scriptMoveEnd = redis.NewScript(luaPrelude + `
local now = now_ms()
if redis.call('HGET', KEYS[1], 't') ~= ARGV[1] then return 'superseded' end
local lapsed = not moving(KEYS[1], now)
redis.call('HDEL', KEYS[1], 'v', 't')
if lapsed then return 'expired' end
redis.call('HSET', KEYS[1], 'm', ARGV[2])
if expire_if_idle(KEYS[1], KEYS[2], now, ARGV[3]) > 0 then redis.call('PERSIST', KEYS[1]) end
return 'ok'
`)
