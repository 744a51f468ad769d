# An EKS cluster for Stageflow's prod stage: control plane with secrets encrypted by its own KMS
# key and every control plane log in CloudWatch, a managed node group, and the IAM roles both
# need. Driven by the provision-cluster flow: a reviewed plan, an approval, exactly that plan
# applied. Same variables and outputs as terraform/standins/cluster.

terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
  }
}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  # IAM role names are limited to 64 characters; cluster names may have 63.
  role_prefix = substr(var.name, 0, 48)
  aws_policy  = "arn:${data.aws_partition.current.partition}:iam::aws:policy"
}

# -- IAM ---------------------------------------------------------------------------------------

resource "aws_iam_role" "cluster" {
  name = "${local.role_prefix}-eks-cluster"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "eks.amazonaws.com" }
      Action    = ["sts:AssumeRole", "sts:TagSession"]
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "cluster" {
  for_each   = toset(["AmazonEKSClusterPolicy"])
  role       = aws_iam_role.cluster.name
  policy_arn = "${local.aws_policy}/${each.key}"
}

# The control plane encrypts Secrets with the key: its role needs to use it.
resource "aws_iam_role_policy" "cluster_kms" {
  name = "encrypt-secrets"
  role = aws_iam_role.cluster.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"]
      Resource = aws_kms_key.secrets.arn
    }]
  })
}

resource "aws_iam_role" "nodes" {
  name = "${local.role_prefix}-eks-nodes"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "nodes" {
  for_each   = toset(["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"])
  role       = aws_iam_role.nodes.name
  policy_arn = "${local.aws_policy}/${each.key}"
}

# -- encryption and logs -------------------------------------------------------------------------

resource "aws_kms_key" "secrets" {
  description             = "Envelope encryption of the Kubernetes Secrets of EKS cluster ${var.name}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  tags                    = var.tags
}

resource "aws_kms_alias" "secrets" {
  name          = "alias/eks/${var.name}"
  target_key_id = aws_kms_key.secrets.key_id
}

# Created before the cluster, so EKS writes into a group with a retention instead of one that
# keeps logs forever.
resource "aws_cloudwatch_log_group" "cluster" {
  name              = "/aws/eks/${var.name}/cluster"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

# -- the cluster -----------------------------------------------------------------------------------

resource "aws_eks_cluster" "this" {
  name                      = var.name
  version                   = var.kubernetes_version
  role_arn                  = aws_iam_role.cluster.arn
  enabled_cluster_log_types = var.log_types

  access_config {
    authentication_mode                         = "API_AND_CONFIG_MAP"
    bootstrap_cluster_creator_admin_permissions = true
  }

  vpc_config {
    subnet_ids              = var.subnet_ids
    endpoint_private_access = true
    endpoint_public_access  = var.endpoint_public_access
    public_access_cidrs     = var.public_access_cidrs
  }

  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = aws_kms_key.secrets.arn
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      # The kubeconfig names var.region: it must be where the cluster really is.
      condition     = var.region == data.aws_region.current.id
      error_message = "region: must be the provider's region."
    }
  }

  depends_on = [
    aws_iam_role_policy_attachment.cluster,
    aws_iam_role_policy.cluster_kms,
    aws_cloudwatch_log_group.cluster,
  ]
}

resource "aws_eks_node_group" "default" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "default"
  node_role_arn   = aws_iam_role.nodes.arn
  subnet_ids      = var.subnet_ids
  instance_types  = var.node_instance_types
  version         = var.kubernetes_version

  scaling_config {
    min_size     = var.node_min
    max_size     = var.node_max
    desired_size = var.node_desired
  }

  update_config {
    max_unavailable = 1
  }

  tags = var.tags

  lifecycle {
    # The cluster autoscaler moves desired_size; a plan must not fight it back.
    ignore_changes = [scaling_config[0].desired_size]
  }

  depends_on = [aws_iam_role_policy_attachment.nodes]
}
