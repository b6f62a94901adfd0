# The two set-up commands of README.md.
.PHONY: demo test check
demo:  ## install and run the platform on the embedded store
	scripts/run.sh
test:  ## install everything the tests need and run them
	scripts/test.sh
check:  ## the inner loop: lint, types and the tests that need no service (under a minute)
	scripts/check.sh
