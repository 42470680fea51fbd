# slotpool: the everyday commands. `make run` serves on the sample config; `make test`
# is what CI runs.

CARGO ?= cargo

.PHONY: run test lint fmt bench load bench-compare chaos chaos-cluster soak clean cluster cluster-stop cluster-status load-cluster

## Run the service on its embedded default: sled journal in ./data, sample config.
run:
	$(CARGO) run --release -- serve --config slotpool.sample.toml

## Everything CI checks: formatting, clippy, unit, property and end-to-end tests.
test: lint
	$(CARGO) test --workspace

## Formatting, clippy (warnings as errors), and no import loop between the modules of
## the core, the journal, the snapshots and the actors (they form layers: tools/module_cycles.py).
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	python3 tools/module_cycles.py --self-test --check events/src journal/src snapshots/src actors/src cluster/src

fmt:
	$(CARGO) fmt --all

## Criterion benchmarks: decide+apply, journal append (per-event flush vs group commit), replay;
## the sweep over 1M holders and memory per member; replay of 1M events and recovery of a
## 10M-event stream with snapshots (its journal is built once under target/bench-data/);
## offline audit of a 10M-event journal and simulate of a year at ten pool sizes
## (SLOTPOOL_AUDIT_BENCH_EVENTS=1000000 for a quick run).
bench:
	$(CARGO) bench -p slotpool-events -p slotpool-journal -p slotpool-snapshots
	$(CARGO) bench -p slotpool --bench offline

## HTTP load against the release binary: prints `load: <ops>/s p50=<ms> p99=<ms> clients=<n>`.
## CLIENTS=64 DURATION=10 RATE=22000 (requests/s; RATE=max for capacity) DURABILITY=fsync
## by default.
load:
	bash benches/load.sh

## Durable request/release against Redis (appendonly, appendfsync always) running the same
## toggle as a Lua script, side by side in one run, alternating rounds; prints both, the
## server CPU and disk bytes per change, and the ratio (benches/bench-compare.sh --help).
## Needs redis-server and redis-tools (Debian packages). BEFORE=<binary> adds an older build.
bench-compare:
	bash benches/bench-compare.sh

## A three-node cluster on this machine with nginx in front, in the foreground (Ctrl-C
## stops it all): nodes on 127.0.0.1:8081-8083 (Raft 9101-9103), nginx on 127.0.0.1:8080
## (slotpool's API) and 127.0.0.1:8088 (a product at :8000 behind the gate); configs,
## data, logs, the shared secret and admin token under ./data-cluster/. `tools/cluster.sh
## status|stop|node N kill` from another terminal; see tools/cluster.sh --help.
cluster:
	$(CARGO) build --release --bin slotpool
	bash tools/cluster.sh run

cluster-stop:
	bash tools/cluster.sh stop

cluster-status:
	bash tools/cluster.sh status

## Benchmark (not a test): durable request/release at 64 clients against one node, then a
## three-node cluster through its leader and through a follower, side by side, and the
## refused-request window of a kill -9 of the leader under load (benches/load-cluster.sh).
load-cluster:
	bash benches/load-cluster.sh

## Chaos against the release binary: users and an administrator under load while the
## service is killed with SIGKILL at random moments and restarted, CYCLES times (100 by
## default); prints `chaos: <cycles> cycles, <acked> acked, 0 lost, 0 violations`.
## `make test` runs the same test with 5 cycles.
chaos:
	CYCLES=$${CYCLES:-100} $(CARGO) test --release -p slotpool --test e2e_chaos -- --nocapture

## Chaos against a three-node cluster (release binary): CYCLES cycles (30 by default) of
## load + a random fault (kill -9 of the leader or a follower, a paused leader, a
## partition through the test's fault proxy) + recovery; checks every acknowledged
## operation after each cycle and the linearizability of the recorded history; prints
## `chaos-cluster: <cycles> cycles, <ops> operations, <acked> acknowledged, 0 lost,
## failover p50 <ms> ms max <ms> ms`.
chaos-cluster:
	CYCLES=$${CYCLES:-30} $(CARGO) test --release -p slotpool --test chaos_cluster -- --ignored --nocapture

## The pure core's property tests with many more random command sequences than `make
## test` runs (PROPTEST_CASES=20000 by default; a few minutes in release mode).
soak:
	PROPTEST_CASES=$${PROPTEST_CASES:-20000} $(CARGO) test --release -p slotpool-events --test properties --test timeline

clean:
	$(CARGO) clean

## The container image (needs a Docker daemon; not part of `make test`). Without a
## registry, run deploy/docker/local-base-images.sh first, then `make docker DOCKER_BUILD_FLAGS="--network host"`.
.PHONY: docker
docker:
	docker build $(DOCKER_BUILD_FLAGS) -t slotpool .
