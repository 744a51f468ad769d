# Stand-in for terraform/modules/rds-postgres where no AWS account (and no provider download) is
# available: same variables, same outputs, built only on Terraform's built-in terraform_data.
# Creating it creates the credentials secret in Secrets Manager (moto in tests, via
# AWS_ENDPOINT_URL); destroying it records the final snapshot and deletes the secret, and, like
# RDS, refuses while deletion_protection is on. Names are derived from the identifier, so a
# re-apply is a no-op and a re-run after a failure adopts what the failed run created.
#
# The provisioners run `$STAGEFLOW_PYTHON -m stageflow.adapters.secrets_manager` (the Terraform
# adapter sets STAGEFLOW_PYTHON to Stageflow's own interpreter). The password is generated
# inside that process: it never appears in a command line, in Terraform's state or its output.

terraform {
  required_version = ">= 1.5"
}

locals {
  secret_name    = "stageflow-standin/rds/${var.identifier}/master"
  snapshot_name  = "stageflow-standin/final-snapshots/${var.identifier}-final"
  endpoint       = "${var.identifier}.standin.rds.invalid"
  port           = 5432
  secret_manager = "\"$${STAGEFLOW_PYTHON:-python3}\" -m stageflow.adapters.secrets_manager"
}

resource "terraform_data" "instance" {
  # What RDS cannot change in place (a new instance, a new master user) replaces the stand-in too.
  triggers_replace = [var.identifier, var.master_username, var.database_name]

  input = {
    identifier          = var.identifier
    secret_name         = local.secret_name
    snapshot_name       = local.snapshot_name
    secret_manager      = local.secret_manager
    deletion_protection = var.deletion_protection
    engine_version      = var.engine_version
    instance_class      = var.instance_class
    multi_az            = true
    storage_encrypted   = true
    backup_retention    = var.backup_retention_days
  }

  provisioner "local-exec" {
    command = join(" ", [
      local.secret_manager, "ensure", "--name", local.secret_name,
      "--field", "username=${var.master_username}", "--generate", "password",
      "--description", "'stand-in for the RDS-managed master secret of ${var.identifier}'",
    ])
  }

  provisioner "local-exec" {
    when    = destroy
    command = <<-EOT
      set -e
      if [ "${self.input.deletion_protection}" = "true" ]; then
        echo "Cannot delete protected DB Instance ${self.input.identifier}, please disable deletion protection and try again." >&2
        exit 1
      fi
      ${self.input.secret_manager} ensure --name ${self.input.snapshot_name} --field instance=${self.input.identifier} --field kind=final-snapshot >/dev/null
      ${self.input.secret_manager} delete --secret-id ${self.input.secret_name} --force
    EOT
  }
}
