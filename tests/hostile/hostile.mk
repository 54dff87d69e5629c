# The hostile-load suite (tests/hostile): a thousand abusive connections,
# clients that never read, connection floods, descriptor exhaustion and
# memory per connection, against the real daemon. Included by the Makefile.

.PHONY: check-hostile

check-hostile: beanstalkd
	BEANSTALKD=$(CURDIR)/beanstalkd python3 tests/hostile/run.py
