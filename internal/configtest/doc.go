// Package configtest holds what the config loaders' fuzz tests share: the
// rule every config error keeps (CheckProblems), a fixture of the files a
// config may name (Fixture, Dir), the docs' example configs as seeds
// (DocExamples, FixturePaths), and checks that a loader starts no
// goroutine, shows no secret and fails alike twice.
//
// It is for tests only, and imports nothing of ours but configerr and
// tlstest, so that yamlconf's own tests can use it too:
//
//	func FuzzLoad(f *testing.F) {
//		fixture := configtest.Fixture(f)
//		configtest.AddSeeds(f, goodSeeds, badSeeds)
//		configtest.AddDocExamples(f, "..")
//		f.Fuzz(func(t *testing.T, data []byte) {
//			configtest.SkipKernelFile(t, data)
//			path := configtest.WriteFile(t, fixture, "pipegate.yaml", data)
//			before := configtest.Goroutines()
//			_, err := Load(path)
//			_, again := Load(path)
//			configtest.CheckNoGoroutine(t, before, "Load")
//			configtest.SameErr(t, err, again)
//			configtest.CheckSecretless(t, data, err)
//			configtest.CheckProblems(t, path, data, err, nil)
//		})
//	}
package configtest
