output "endpoint" {
  description = "Host name clients connect to (a stand-in: it does not resolve)."
  value       = local.endpoint
  depends_on  = [terraform_data.instance]
}

output "port" {
  value      = local.port
  depends_on = [terraform_data.instance]
}

output "credentials_secret" {
  description = "Name of the Secrets Manager secret holding the master credentials (RDS: its ARN)."
  value       = terraform_data.instance.output.secret_name
}

output "instance" {
  value = terraform_data.instance.output.identifier
}
