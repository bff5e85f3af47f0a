# kvm-ft top-level Makefile: everything starts here.
#   make           build userspace (build/) and the kernel module (kmod/)
#   make check     all tests: unit, sanitizer, kernel selftests in a VM
#   make demo      the furthest real end-to-end path, on this machine
#   make bench     benchmarks (bench/, kernel benches in a VM)
#   make install   binaries, units, man pages, completion, DKMS source, docs
BUILD ?= build
JOBS ?= 2
PREFIX ?= /usr/local
DESTDIR ?=

all: user kmod

deps:
	@sh scripts/deps.sh

user: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

kmod: deps
	$(MAKE) -C kmod

check: deps
	JOBS=$(JOBS) sh scripts/check.sh

demo: deps user
	sh scripts/demo.sh

bench: deps user kmod
	sh bench/run.sh

install: user kmod
	sh scripts/install.sh $(BUILD) "$(DESTDIR)" $(PREFIX)

clean:
	rm -rf $(BUILD) build-asan
	$(MAKE) -C kmod clean

.PHONY: all deps user kmod check demo bench install clean
