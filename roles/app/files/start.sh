#!/bin/sh
# Demo "restart": records when the app was (re)started next to the release.
set -eu
date -u +%Y-%m-%dT%H:%M:%SZ > "$(dirname "$0")/STARTED"
