# Node.js client libraries, unmodified, driven by our scenarios against the
# daemon (memory mode and -b store): tests/clients/node/. Included from the
# top-level Makefile.
#
#   make check-clients-node              against ./beanstalkd
#   make check-clients-node-reference    the same scenarios against stock
#                                        beanstalkd ($(STOCK)), when installed
#
# setup.sh installs node/npm from Debian when missing and the pinned clients
# into tests/clients/node/.cache when that is missing or stale.

.PHONY: check-clients-node check-clients-node-reference

check-clients-node: beanstalkd
	sh tests/clients/node/setup.sh
	BEANSTALKD=$(CURDIR)/beanstalkd python3 tests/clients/node/run_node.py

check-clients-node-reference:
	@if [ -x $(STOCK) ]; then \
	  sh tests/clients/node/setup.sh && \
	  BEANSTALKD=$(STOCK) BS_REFERENCE=1 python3 tests/clients/node/run_node.py; \
	else echo "check-clients-node-reference: $(STOCK) not installed, skipped"; fi
