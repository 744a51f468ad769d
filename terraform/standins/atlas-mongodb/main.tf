# Stand-in for terraform/modules/atlas-mongodb where neither Atlas nor AWS (nor a provider
# download) is available: same variables, same outputs, built only on terraform_data. Creating
# it stores the user's generated credentials in Secrets Manager (moto in tests, via
# AWS_ENDPOINT_URL); destroying it records the retained backup and deletes the secret, and, like
# Atlas, refuses while termination_protection is on. Names come from the variables, so a
# re-apply is a no-op and a re-run after a failure adopts what the failed run created.
#
# The password is generated inside `$STAGEFLOW_PYTHON -m stageflow.adapters.secrets_manager`:
# it never appears in a command line, in Terraform's state or its output.

terraform {
  required_version = ">= 1.5"
}

locals {
  endpoint       = "mongodb+srv://${lower(var.cluster_name)}.standin.mongodb.invalid"
  snapshot_name  = "stageflow-standin/final-snapshots/${var.project_id}-${var.cluster_name}"
  secret_manager = "\"$${STAGEFLOW_PYTHON:-python3}\" -m stageflow.adapters.secrets_manager"
}

resource "terraform_data" "cluster" {
  # What Atlas cannot change in place (another cluster, another user) replaces the stand-in too.
  triggers_replace = [var.project_id, var.cluster_name, var.username, var.secret_name]

  input = {
    cluster_name           = var.cluster_name
    secret_name            = var.secret_name
    snapshot_name          = local.snapshot_name
    secret_manager         = local.secret_manager
    termination_protection = var.termination_protection
    instance_size          = var.instance_size
    mongodb_version        = var.mongodb_version
    database_name          = var.database_name
  }

  provisioner "local-exec" {
    command = join(" ", [
      local.secret_manager, "ensure", "--name", var.secret_name,
      "--field", "username=${var.username}", "--generate", "password",
      "--description", "'stand-in: credentials of ${var.username} on ${var.cluster_name}'",
    ])
  }

  provisioner "local-exec" {
    when    = destroy
    command = <<-EOT
      set -e
      if [ "${self.input.termination_protection}" = "true" ]; then
        echo "Cannot terminate cluster ${self.input.cluster_name}: termination protection is enabled." >&2
        exit 1
      fi
      ${self.input.secret_manager} ensure --name ${self.input.snapshot_name} --field cluster=${self.input.cluster_name} --field kind=retained-backup >/dev/null
      ${self.input.secret_manager} delete --secret-id ${self.input.secret_name} --force
    EOT
  }
}
