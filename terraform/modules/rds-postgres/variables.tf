# Shared word for word by terraform/standins/rds-postgres (a unit test keeps the two identical).

variable "identifier" {
  description = "The RDS instance identifier (the Database spec's instance): unique in the account and region."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,61}[a-z0-9]$", var.identifier)) && !strcontains(var.identifier, "--")
    error_message = "identifier: 1-63 lowercase letters, digits and single hyphens, starting with a letter."
  }
}

variable "database_name" {
  description = "The database created in the instance."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9_]{0,62}$", var.database_name))
    error_message = "database_name: letters, digits and underscores, starting with a letter."
  }
}

variable "master_username" {
  description = "The master user; its password is generated and kept in Secrets Manager by RDS."
  type        = string
  default     = "stageflow"
}

variable "engine_version" {
  description = "PostgreSQL major (or major.minor) version."
  type        = string
  default     = "16"
}

variable "instance_class" {
  type    = string
  default = "db.t4g.medium"
}

variable "allocated_storage" {
  description = "Initial storage in GiB."
  type        = number
  default     = 20
}

variable "max_allocated_storage" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
  default     = 100
}

variable "backup_retention_days" {
  description = "Days automated backups are kept (point-in-time recovery window)."
  type        = number
  default     = 7

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days: 1 to 35 (0 would switch automated backups off)."
  }
}

variable "db_subnet_group_name" {
  description = "An existing DB subnet group spanning at least two availability zones (Multi-AZ)."
  type        = string
}

variable "vpc_security_group_ids" {
  description = "Security groups that allow the prod cluster's nodes to reach the database port."
  type        = list(string)
}

variable "deletion_protection" {
  description = "Keep on. Tearing a database down is two reviewed plans: this set to false, then -destroy."
  type        = bool
  default     = true
}

variable "tags" {
  type    = map(string)
  default = {}
}
