# ablate — run `make reproduce` or `make test` on a fresh Debian machine (as root).
SHELL := /bin/bash
SWIFT ?= swift
BIN := .build/release/ablate
APT_PACKAGES := libopenblas-dev dataset-fashion-mnist libsqlite3-dev zlib1g-dev pkg-config

.PHONY: deps build test bench reproduce clean

# Installs the system packages that are missing (apt-get update only when something is).
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "error: missing system packages:$$missing"; \
	    echo "  fix: run 'sudo make deps' or 'sudo apt-get install$$missing'"; exit 1; \
	  fi; \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build -c release --product ablate

# Unit tests, gradient checks, PyTorch golden fixtures, "it learns" (debug build, -O on numeric targets).
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# Training-step throughput against PyTorch (when installed); writes results/bench.md.
bench: build
	$(BIN) bench --output results/bench.md

# The default table: SimSiam Fig 2 (stop-gradient) on `mini`, one seed, trained afresh into its
# own database (the committed results/ablate.sqlite would otherwise be reused); prints the markdown
# and writes the curves of Fig 2 (loss, z_std·√d, kNN per epoch) as SVG, printing their paths.
REPRODUCE_DIR ?= results/reproduce
reproduce: build
	$(BIN) run simsiam-fig2 --seeds 1 --db $(REPRODUCE_DIR)/ablate.sqlite --output $(REPRODUCE_DIR) \
	  --checkpoints $(REPRODUCE_DIR)/checkpoints
	$(BIN) plot simsiam-fig2 --seeds 1 --db $(REPRODUCE_DIR)/ablate.sqlite --output $(REPRODUCE_DIR)/figures

clean:
	rm -rf .build
