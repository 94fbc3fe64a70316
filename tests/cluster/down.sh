#!/usr/bin/env bash
# Stops every process the local test control plane started (see cluster.sh).
exec bash "$(dirname "${BASH_SOURCE[0]}")/cluster.sh" down
