output "endpoint" {
  description = "The cluster's mongodb+srv connection string (no credentials in it)."
  value       = mongodbatlas_advanced_cluster.this.connection_strings.standard_srv
}

output "port" {
  value = 27017
}

output "credentials_secret" {
  description = "ARN of the Secrets Manager secret holding the user's credentials."
  value       = aws_secretsmanager_secret.credentials.arn
  depends_on  = [aws_secretsmanager_secret_version.credentials]
}

output "instance" {
  value = mongodbatlas_advanced_cluster.this.name
}
