"""Direct-alert rules that reproduce seed 001's and seed 002's filters (shared by the rule and pattern tests)."""

SEED_001_RULES = {  # IAM users' calls to EC2, S3, IAM, RDS and sign-in (seed 001's filter)
    "include": ["*"],
    "identity_types": ["IAMUser"],
    "event_sources": [
        "ec2.amazonaws.com",
        "s3.amazonaws.com",
        "iam.amazonaws.com",
        "rds.amazonaws.com",
        "signin.amazonaws.com",
    ],
}
SEED_002_RULES = {  # hidekuro/cloudtrail-to-slack's list, failed console sign-ins only
    "include": [
        "*SecurityGroup*",
        "ApplySecurityGroupsToLoadBalancer",
        "*Policy*",
        "*Gateway",
        "*User",
        "*Vpc*",
        "*NetworkAcl*",
        "CreateRoute",
        "StopLogging",
    ],
    "signin": {"root": False, "failure": True, "no_mfa": False},
}
