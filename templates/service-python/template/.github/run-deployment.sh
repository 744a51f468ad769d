#!/usr/bin/env bash
# Start a run of a Prefect deployment through the REST API and print its id:
#   run-deployment.sh FLOW/DEPLOYMENT IDEMPOTENCY_KEY 'JSON_PARAMETERS'
# The idempotency key makes a retried CI job return the run the first attempt created instead of
# starting another. PREFECT_API_URL is required; PREFECT_API_KEY is sent when set (never printed).
set -euo pipefail
name="$1" key="$2" parameters="$3"
: "${PREFECT_API_URL:?set the repository variable PREFECT_API_URL}"
auth=()
if [ -n "${PREFECT_API_KEY:-}" ]; then auth=(-H "Authorization: Bearer ${PREFECT_API_KEY}"); fi
deployment_id="$(curl -fsS "${auth[@]}" "${PREFECT_API_URL%/}/deployments/name/${name}" | jq -r .id)"
body="$(jq -n --arg key "$key" --argjson parameters "$parameters" '{idempotency_key: $key, parameters: $parameters}')"
curl -fsS "${auth[@]}" -H 'Content-Type: application/json' -d "$body" \
  "${PREFECT_API_URL%/}/deployments/${deployment_id}/create_flow_run" | jq -r '"flow run \(.id) (\(.name))"'
