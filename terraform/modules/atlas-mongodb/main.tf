# A service's prod MongoDB: a three-node Atlas replica set with cloud backups (kept after the
# cluster is deleted: the "final snapshot"), a database user with a generated password, and
# that password stored in AWS Secrets Manager, where Stageflow syncs it into <app>-prod from.
#
# The password is in Terraform's state (Atlas has no managed-password mode): the state backend
# must be encrypted and access-controlled (S3 with encrypt = true, a narrow bucket policy).

terraform {
  required_version = ">= 1.5"

  required_providers {
    mongodbatlas = {
      source  = "mongodb/mongodbatlas"
      version = "~> 2.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.31, < 7.0"
    }
  }
}

resource "mongodbatlas_advanced_cluster" "this" {
  project_id                     = var.project_id
  name                           = var.cluster_name
  cluster_type                   = "REPLICASET"
  mongo_db_major_version         = var.mongodb_version
  backup_enabled                 = true
  pit_enabled                    = true
  retain_backups_enabled         = true
  termination_protection_enabled = var.termination_protection

  replication_specs = [{
    region_configs = [{
      provider_name = "AWS"
      region_name   = var.region_name
      priority      = 7
      electable_specs = {
        instance_size = var.instance_size
        node_count    = 3
      }
    }]
  }]

  tags = merge(var.tags, { "stageflow.dev/managed-by" = "stageflow" })
}

resource "random_password" "user" {
  length  = 32
  special = false
}

resource "mongodbatlas_database_user" "this" {
  project_id         = var.project_id
  username           = var.username
  password           = random_password.user.result
  auth_database_name = "admin"

  roles {
    role_name     = "readWrite"
    database_name = var.database_name
  }

  scopes {
    name = mongodbatlas_advanced_cluster.this.name
    type = "CLUSTER"
  }
}

resource "aws_secretsmanager_secret" "credentials" {
  name                    = var.secret_name
  description             = "Credentials of ${var.username} on Atlas cluster ${var.cluster_name}"
  recovery_window_in_days = 7
  tags                    = merge(var.tags, { "stageflow.dev/managed-by" = "stageflow" })
}

resource "aws_secretsmanager_secret_version" "credentials" {
  secret_id = aws_secretsmanager_secret.credentials.id
  secret_string = jsonencode({
    username = mongodbatlas_database_user.this.username
    password = random_password.user.result
  })
}
