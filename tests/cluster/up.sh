#!/usr/bin/env bash
# Starts the local test control plane (see cluster.sh) and prints the admin kubeconfig path.
exec bash "$(dirname "${BASH_SOURCE[0]}")/cluster.sh" up
