# The two set-up commands of README.md.
.PHONY: demo test
demo:  ## install and run the platform on the embedded store
	scripts/run.sh
test:  ## install everything the tests need and run them
	scripts/test.sh
