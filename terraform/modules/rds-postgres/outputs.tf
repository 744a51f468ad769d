output "endpoint" {
  description = "Host name clients connect to."
  value       = aws_db_instance.this.address
}

output "port" {
  value = aws_db_instance.this.port
}

output "credentials_secret" {
  description = "ARN of the Secrets Manager secret RDS keeps the master credentials in."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "instance" {
  value = aws_db_instance.this.identifier
}
