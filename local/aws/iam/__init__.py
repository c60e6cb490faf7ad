"""IAM enforced on the local stack: see `local.aws.iam.gate`."""
