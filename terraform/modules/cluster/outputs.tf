output "name" {
  value = aws_eks_cluster.this.name
}

output "endpoint" {
  description = "The API server URL."
  value       = aws_eks_cluster.this.endpoint
}

output "certificate_authority" {
  description = "The cluster CA certificate, base64-encoded PEM (public: it goes into every kubeconfig)."
  value       = aws_eks_cluster.this.certificate_authority[0].data
  sensitive   = false
}

output "kubeconfig" {
  description = "A kubeconfig that authenticates with `aws eks get-token` (no credential inside; kept sensitive anyway)."
  value = templatefile("${path.module}/kubeconfig.tftpl", {
    name                  = aws_eks_cluster.this.name
    endpoint              = aws_eks_cluster.this.endpoint
    certificate_authority = aws_eks_cluster.this.certificate_authority[0].data
    region                = var.region
  })
  sensitive  = true
  depends_on = [aws_eks_node_group.default]
}
