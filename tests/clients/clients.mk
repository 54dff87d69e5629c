# Client-library scenarios (tests/clients/): real, unmodified client
# libraries from Debian driven against the daemon by scenario scripts of
# ours. Included from the top-level Makefile.
#
#   make check-clients            install what is missing, run every scenario
#                                 against ./beanstalkd (memory and store)
#   make check-clients-reference  the same scenarios against stock $(STOCK)
#
# Each client adds its Debian packages to CLIENT_DEB and any other set-up
# target (an npm install, say) to CLIENT_SETUP, then one row to the SCENARIOS
# table in tests/clients/run.py. CLIENT_SETUP is read with secondary
# expansion, so additions made after this file is included count too.

# What the driver itself needs.
CLIENT_DEB += python3

# PHP: pheanstalk and Symfony Messenger's beanstalkd transport. Ruby: beaneater.
CLIENT_DEB_PHP_RUBY = php-cli php-pda-pheanstalk php-symfony-beanstalkd-messenger \
                      ruby ruby-beaneater
CLIENT_DEB += $(CLIENT_DEB_PHP_RUBY)

CLIENT_SETUP += clients-deb

.PHONY: check-clients check-clients-reference clients-deb

# apt-get only for what is not installed yet (dpkg's "install ok installed";
# a removed package that left its config files does not count).
clients-deb:
	@missing=""; for p in $(sort $(CLIENT_DEB)); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' \
	    || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing \
	    >/dev/null; \
	fi

.SECONDEXPANSION:

# The Node scenarios (tests/clients/node/node.mk) run as part of it.
check-clients: beanstalkd $$(CLIENT_SETUP) check-clients-node
	python3 tests/clients/run.py --strict

# Proves the scenarios themselves against stock beanstalkd (Debian's
# package, installed here when missing: a yardstick, never a dependency).
check-clients-reference: $$(CLIENT_SETUP)
	@$(MAKE) --no-print-directory clients-deb CLIENT_DEB=beanstalkd
	python3 tests/clients/run.py --strict --binary $(STOCK)
