#! /bin/sh
# runs before a reactivation of the service
exit 0
