#!/usr/bin/env bash
# Writes the PrometheusRule (Prometheus Operator) form of rules.yml to stdout:
#   deploy/prometheus/generate.sh > deploy/prometheus/nodekeeper-rules.yaml
# rules.yml is the source of truth; the PrometheusRule's spec is its `groups:` block as
# is (test/metrics-rules.test.ts checks that the committed file is this output).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cat <<'HEAD'
# Generated from deploy/prometheus/rules.yml by deploy/prometheus/generate.sh: edit that
# file and run the script again. Runbooks: docs/alerts.md.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: nodekeeper
  labels:
    app.kubernetes.io/name: nodekeeper
    app.kubernetes.io/component: coordinator
spec:
HEAD
# Everything from `groups:` on, indented under spec (comment lines before it dropped).
sed -n '/^groups:/,$p' "$here/rules.yml" | sed 's/^\(.\)/  \1/'
