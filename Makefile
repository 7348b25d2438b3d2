# The two commands of the README.
.PHONY: demo test demo-stop dist

demo:
	./scripts/demo.sh

demo-stop:
	./scripts/demo.sh stop

test:
	./scripts/test.sh

# Not one of the two: the release binary (glibc 2.17+) and its tarball, .deb and .rpm in target/dist/.
dist:
	./scripts/dist.sh
