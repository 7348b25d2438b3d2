# The two commands of the README.
.PHONY: demo test demo-stop

demo:
	./scripts/demo.sh

demo-stop:
	./scripts/demo.sh stop

test:
	./scripts/test.sh
