#!/usr/bin/env bash
# Remove lab containers and networks: those of one scenario (argument), or every one the lab made.
set -euo pipefail
filter=label=netreach.lab=1
[[ $# -gt 0 ]] && filter="label=netreach.lab.scenario=$1"
containers=$(docker ps -aq --filter "${filter}")
[[ -n "${containers}" ]] && docker rm -f ${containers} >/dev/null
networks=$(docker network ls -q --filter "${filter}")
[[ -n "${networks}" ]] && docker network rm ${networks} >/dev/null
echo "lab removed (${filter})"
