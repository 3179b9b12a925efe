# The two commands of the README, and their counterparts.
#   make up     start the whole pipeline locally, with a demo (deploy/local/up)
#   make test   install what the tests need, then run every test
#   make down   stop what `make up` started (deploy/local/down)
#   make lint   formatting, clippy and cargo deny (deny.toml), as CI runs them

.PHONY: up down test lint

up:
	deploy/local/up

down:
	deploy/local/down

test:
	deploy/local/install-deps
	# The alert rules: valid, and their unit tests pass (deploy/prometheus/).
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/tests/*.yml
	# The Kubernetes overlays render (also checked by tests/it/deploy_files.rs).
	@if command -v kubectl >/dev/null; then \
		for o in deploy/kubernetes/overlays/*/; do kubectl kustomize "$$o" >/dev/null || exit 1; done; \
		echo "kubectl kustomize: every overlay renders"; \
	else echo "kubectl not installed: Kubernetes overlays not rendered"; fi
	cargo test --workspace
	# The JSONata conformance summary (docs/jsonata.md), printed.
	cargo test -q -p switchyard-connectors --test jsonata_conformance -- --nocapture

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	# Dependencies: bans, licences, sources; advisories where the database can be had.
	deploy/local/install-deps cargo-deny
	deploy/local/cargo-deny-check
