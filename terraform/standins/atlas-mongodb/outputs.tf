output "endpoint" {
  description = "The cluster's connection string (a stand-in: it does not resolve)."
  value       = local.endpoint
  depends_on  = [terraform_data.cluster]
}

output "port" {
  value      = 27017
  depends_on = [terraform_data.cluster]
}

output "credentials_secret" {
  description = "Name of the Secrets Manager secret holding the user's credentials (Atlas module: its ARN)."
  value       = terraform_data.cluster.output.secret_name
}

output "instance" {
  value = terraform_data.cluster.output.cluster_name
}
