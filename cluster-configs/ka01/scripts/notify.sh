#!/bin/sh
# notify.sh STATE INSTANCE — called by keepalived/flotilla on VRRP transitions.
logger -t vrrp-notify "instance $2 is now $1"
