#! /bin/sh
# start the web service
exit 0
