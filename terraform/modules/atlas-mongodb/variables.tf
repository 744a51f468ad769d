# Shared word for word by terraform/standins/atlas-mongodb (a unit test keeps the two identical).

variable "project_id" {
  description = "The Atlas project the cluster belongs to."
  type        = string
}

variable "cluster_name" {
  description = "The Atlas cluster name (the Database spec's instance): unique in the project."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9][a-zA-Z0-9-]{0,63}$", var.cluster_name))
    error_message = "cluster_name: up to 64 letters, digits and hyphens, starting with a letter or digit."
  }
}

variable "database_name" {
  description = "The database the service's user may read and write."
  type        = string
}

variable "username" {
  description = "The database user created for the service; its password is generated."
  type        = string
}

variable "secret_name" {
  description = "Name of the AWS Secrets Manager secret the user's credentials are stored in."
  type        = string
}

variable "instance_size" {
  type    = string
  default = "M10"
}

variable "region_name" {
  description = "Atlas region name of the AWS region the cluster runs in."
  type        = string
  default     = "EU_WEST_1"
}

variable "mongodb_version" {
  type    = string
  default = "7.0"
}

variable "termination_protection" {
  description = "Keep on. Tearing a cluster down is two reviewed plans: this set to false, then -destroy."
  type        = bool
  default     = true
}

variable "tags" {
  type    = map(string)
  default = {}
}
