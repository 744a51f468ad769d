# Shared word for word by terraform/standins/cluster (a test keeps the two identical).

variable "name" {
  description = "The EKS cluster name: unique in the account and region; also the kubeconfig's context."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,61}[a-z0-9]$", var.name)) && !strcontains(var.name, "--")
    error_message = "name: 1-63 lowercase letters, digits and single hyphens, starting with a letter."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane and the node group (e.g. 1.34)."
  type        = string
  default     = "1.34"

  validation {
    condition     = can(regex("^1\\.[0-9]+$", var.kubernetes_version))
    error_message = "kubernetes_version: a minor version such as 1.34."
  }
}

variable "region" {
  description = "The region the provider works in; written into the kubeconfig's `aws eks get-token` call."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets in at least two availability zones, for the control plane ENIs and the nodes."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids: at least two subnets (EKS needs two availability zones)."
  }
}

variable "endpoint_public_access" {
  description = "false: the API server is reachable only from inside the VPC (the private endpoint is always on)."
  type        = bool
  default     = true
}

variable "public_access_cidrs" {
  description = "Who may reach the public endpoint, when it is on."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "node_instance_types" {
  description = "EC2 instance types of the managed node group (the first one available is used)."
  type        = list(string)
  default     = ["m6i.large"]

  validation {
    condition     = length(var.node_instance_types) >= 1
    error_message = "node_instance_types: at least one instance type."
  }
}

variable "node_min" {
  type    = number
  default = 2
}

variable "node_max" {
  type    = number
  default = 6
}

variable "node_desired" {
  description = "Initial node count; afterwards the cluster autoscaler owns it (changes are ignored)."
  type        = number
  default     = 3

  validation {
    condition     = var.node_min >= 1 && var.node_min <= var.node_desired && var.node_desired <= var.node_max
    error_message = "node_min <= node_desired <= node_max, and node_min at least 1."
  }
}

variable "log_types" {
  description = "Control plane logs sent to CloudWatch."
  type        = list(string)
  default     = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
}

variable "log_retention_days" {
  type    = number
  default = 90
}

variable "tags" {
  type    = map(string)
  default = {}
}
