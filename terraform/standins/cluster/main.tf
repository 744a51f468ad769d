# Stand-in for terraform/modules/cluster where no AWS account (and no provider download) is
# available: the same variables, the same outputs, built only on Terraform's built-in
# terraform_data. Nothing outside Terraform's state is created.
#
# Its kubeconfig is rendered from the same template as the real module's (kubeconfig.tftpl), with
# a stand-in endpoint and CA derived from the name: the flow stores what it gets exactly as it
# would for EKS. The endpoint does not resolve; what the stand-in proves is the plan, approval,
# apply and block path, not a reachable API server. Everything derives from the variables, so a
# re-apply is a no-op.

terraform {
  required_version = ">= 1.9"
}

locals {
  endpoint = "https://${upper(substr(sha256(var.name), 0, 32))}.gr7.${var.region}.eks.standin.invalid"
  # A real CA is a PEM certificate; this only has its shape (base64 of a PEM block).
  certificate_authority = base64encode("-----BEGIN CERTIFICATE-----\nstand-in CA of ${var.name}\n-----END CERTIFICATE-----\n")
}

resource "terraform_data" "cluster" {
  # What EKS cannot change in place (the name) replaces the stand-in too.
  triggers_replace = [var.name]

  input = {
    name                   = var.name
    kubernetes_version     = var.kubernetes_version
    subnet_ids             = var.subnet_ids
    endpoint_public_access = var.endpoint_public_access
    public_access_cidrs    = var.public_access_cidrs
    secrets_encryption     = "kms"
    log_types              = var.log_types
    log_retention_days     = var.log_retention_days
    tags                   = var.tags
  }
}

resource "terraform_data" "node_group" {
  input = {
    cluster        = terraform_data.cluster.output.name
    instance_types = var.node_instance_types
    min            = var.node_min
    max            = var.node_max
    desired        = var.node_desired
  }

  lifecycle {
    ignore_changes = [input["desired"]]
  }
}
