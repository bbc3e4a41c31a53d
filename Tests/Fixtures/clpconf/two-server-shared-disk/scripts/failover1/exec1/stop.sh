#! /bin/sh
# stop the web service
exit 0
