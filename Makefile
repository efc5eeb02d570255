# xenlite: the two front-door commands are `make demo` and `make test`.
# Both install what is missing (Debian packages with apt-get when root, the .venv with the
# project and its test extras), quietly and only once, then run.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Debian packages the project needs at run and test time (see README "Requirements").
DEB_PACKAGES := python3 python3-venv python3-pip qemu-system-x86 qemu-utils busybox-static \
                cpio e2fsprogs xz-utils zstd kmod dpkg-dev xenstore-utils bsdutils gcc lvm2 iproute2 \
                fdisk dosfstools mtools xorriso nftables seabios ovmf syslinux syslinux-common \
                isolinux grub-efi-amd64-bin grub-common debootstrap

.PHONY: demo test lint typecheck unit deps venv bench clean help

help:
	@echo "make demo   - install what is missing, then run the built-in demo domain"
	@echo "make test   - install what is missing, then run ruff, mypy and the whole test suite"
	@echo "make bench  - run the benchmarks in bench/ (each prints one JSON object)"

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages: $$missing"; \
	    log=$$(mktemp); \
	    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	           DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	             $$missing; } >$$log 2>&1; then \
	      cat $$log; rm -f $$log; echo "apt-get failed: see the output above"; exit 1; \
	    fi; rm -f $$log; \
	  else \
	    echo "xenlite needs these Debian packages; as root, run:"; \
	    echo "  apt-get install -y $$missing"; \
	    exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

venv: $(STAMP)

demo: $(STAMP)
	@$(MAKE) --no-print-directory deps
	@$(BIN)/xenlite demo

lint: $(STAMP)
	@$(BIN)/ruff format --check src tests bench
	@$(BIN)/ruff check src tests bench

typecheck: $(STAMP)
	@$(BIN)/mypy

unit: $(STAMP)
	@$(BIN)/pytest -q

test: $(STAMP)
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory lint typecheck unit

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
