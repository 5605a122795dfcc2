# The two commands of the quick start:
#   make up    install, build and start the whole platform with the seeded demo tenant
#   make test  install and run every check and test (what CI runs)
.PHONY: up test install

up: install
	node deploy/local/up.mjs

test: install
	pnpm run proto:check
	pnpm run format:check
	pnpm run lint
	pnpm run test:unit
	pnpm run test:int
	pnpm run test:e2e

install:
	bash deploy/scripts/install.sh
