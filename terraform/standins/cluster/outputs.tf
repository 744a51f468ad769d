output "name" {
  value = terraform_data.cluster.output.name
}

output "endpoint" {
  description = "The API server URL (a stand-in: it does not resolve)."
  value       = local.endpoint
  depends_on  = [terraform_data.cluster]
}

output "certificate_authority" {
  description = "The cluster CA certificate, base64-encoded PEM (public: it goes into every kubeconfig)."
  value       = local.certificate_authority
  sensitive   = false
  depends_on  = [terraform_data.cluster]
}

output "kubeconfig" {
  description = "A kubeconfig that authenticates with `aws eks get-token` (no credential inside; kept sensitive anyway)."
  value = templatefile("${path.module}/kubeconfig.tftpl", {
    name                  = terraform_data.cluster.output.name
    endpoint              = local.endpoint
    certificate_authority = local.certificate_authority
    region                = var.region
  })
  sensitive  = true
  depends_on = [terraform_data.node_group]
}
