//! `conclave admin`: server administration straight on the database that
//! `serve` uses (SQLite file or PostgreSQL), safe while the server runs.
//! Every change is written to the audit log like its API counterpart.

use crate::config::{self, StorageArgs};
use crate::progress::Progress;
use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::{OrgPolicy, OrgPolicyUpdate, Plan};
use conclave_server::accounts::{self, NewAccount};
use conclave_server::state::Audit;
use conclave_server::{AppState, SharedState, SystemClock};
use conclave_store::{AuditVerdict, UserRow};
use std::sync::Arc;

#[derive(Args)]
pub struct AdminArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create the first organisation and its owner (non-interactive).
    Bootstrap {
        #[arg(long)]
        email: String,
        /// The owner's password (or set CONCLAVE_BOOTSTRAP_PASSWORD to keep it out of the process list).
        #[arg(long, env = "CONCLAVE_BOOTSTRAP_PASSWORD", hide_env_values = true)]
        password: String,
        /// The organisation's name.
        #[arg(long)]
        org: String,
        /// The owner's name as others see it [default: the part of the email before @].
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Organisations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Organisation policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// List accounts of every organisation.
    List,
    /// Deactivate an account and sign it out everywhere.
    Deactivate { email: String },
    /// Reactivate a deactivated or dormant account.
    Reactivate { email: String },
    /// Turn off two-factor and remove the passkeys of an account whose devices are lost (they enrol again at next sign-in if required).
    Reset2fa { email: String },
    /// Disable accounts unused past their organisation's cutoff now.
    SweepDormant,
}

#[derive(Subcommand)]
enum OrgCommand {
    /// List organisations.
    List,
    /// Change an organisation's plan; `licensed` lifts the 40-minute meeting limit.
    SetPlan {
        org: String,
        #[arg(value_parser = ["free", "licensed"])]
        plan: String,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Print an organisation's policy as JSON.
    Show { org: String },
    /// Apply a partial policy update given as JSON, e.g. '{"require_2fa":{"value":true,"locked":true}}'.
    Set { org: String, json: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the whole hash chain; exits non-zero if anything was altered.
    Verify,
    /// Print the newest events.
    Tail {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let file = config::read_file(args.storage.config.as_deref())?;
    let mut server_config = config::storage_config(&args.storage, &file, config::DEFAULT_LISTEN.parse()?)?;
    if let Some(regions) = file.regions {
        server_config.regions = regions;
    }
    let store = conclave_server::open_store(&server_config).await.context("cannot open the server's database")?;
    let secrets = conclave_server::secrets::SecretsKey::load_or_create(&server_config.secrets_key_file)?;
    conclave_server::secrets::prepare(&store, &secrets).await?;
    let state = AppState::new(store, server_config, secrets, Arc::new(SystemClock), None);
    let result = dispatch(&state, args.command).await;
    state.store.close().await;
    result
}

async fn audit(
    state: &SharedState,
    action: AuditAction,
    org_id: Option<&str>,
    target: Option<&str>,
    detail: &str,
) -> anyhow::Result<()> {
    let event = Audit { org_id, target, detail, ..Audit::new(action, AuditOutcome::Success) };
    Ok(state.audit(event).await?)
}

async fn user_by_email(state: &SharedState, email: &str) -> anyhow::Result<UserRow> {
    let email = accounts::normalize_email(email)?;
    state.store.user_by_email(&email).await?.ok_or_else(|| anyhow!("no account has the email {email}"))
}

async fn org_by_id(state: &SharedState, id: &str) -> anyhow::Result<(conclave_proto::Org, OrgPolicy)> {
    state
        .store
        .org_by_id(id)
        .await?
        .ok_or_else(|| anyhow!("no organisation has the id {id} (see `conclave admin org list`)"))
}

async fn dispatch(state: &SharedState, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Bootstrap { email, password, org, display_name } => {
            if state.store.count_orgs().await? > 0 {
                bail!("this server already has an organisation; invite people from it instead");
            }
            let name = display_name.unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
            let account = NewAccount::validate(&email, &name, &password)?;
            let owner = accounts::bootstrap(state, &org, account, None).await?;
            println!(
                "Created organisation {:?} ({}) with owner {}.",
                org.trim(),
                owner.org_id.unwrap_or_default(),
                owner.email
            );
            println!("Sign in at the server's URL with that email and password.");
        }
        AdminCommand::User(cmd) => user_command(state, cmd).await?,
        AdminCommand::Org(OrgCommand::List) => {
            for (org, _) in state.store.list_orgs().await? {
                let members = state.store.list_org_members(&org.id).await?.len();
                println!("{}  {:<30} plan={:<8} members={members}", org.id, org.name, org.plan.as_str());
            }
        }
        AdminCommand::Org(OrgCommand::SetPlan { org, plan }) => {
            let (org, mut policy) = org_by_id(state, &org).await?;
            let plan = Plan::parse(&plan).expect("clap restricts the values");
            // Moving to a plan lifts or re-applies its cap on meeting length.
            policy.meeting_time_limit_minutes.value =
                match (plan.meeting_cap_minutes(), policy.meeting_time_limit_minutes.value) {
                    (None, _) => None,
                    (Some(cap), Some(current)) => Some(current.min(cap)),
                    (Some(cap), None) => Some(cap),
                };
            state.store.set_org_plan(&org.id, plan, &policy).await?;
            audit(state, AuditAction::OrgPlan, Some(&org.id), Some(&org.id), plan.as_str()).await?;
            println!("{} is now on the {} plan; meeting limit: {}", org.name, plan.as_str(), limit_text(&policy));
        }
        AdminCommand::Policy(PolicyCommand::Show { org }) => {
            let (_, policy) = org_by_id(state, &org).await?;
            println!("{}", serde_json::to_string_pretty(&policy)?);
        }
        AdminCommand::Policy(PolicyCommand::Set { org, json }) => {
            let (org, policy) = org_by_id(state, &org).await?;
            let update: OrgPolicyUpdate =
                serde_json::from_str(&json).context("the policy update is not valid JSON of the right shape")?;
            let next = conclave_server::org_policy::apply_update(policy, update, org.plan, &state.config.regions)?;
            state.store.update_org_policy(&org.id, &next).await?;
            audit(state, AuditAction::OrgPolicyUpdate, Some(&org.id), Some(&org.id), &json).await?;
            println!("{}", serde_json::to_string_pretty(&next)?);
        }
        AdminCommand::Audit(AuditCommand::Verify) => {
            let progress = Progress::new("verifying audit chain");
            let verdict = state.store.verify_audit_chain(|done, total| progress.update(done, total)).await?;
            progress.finish();
            match verdict {
                AuditVerdict::Intact(head) => println!("audit chain intact: {} events, head {}", head.seq, head.hash),
                AuditVerdict::Broken(err) => bail!("audit chain BROKEN: {err}"),
            }
        }
        AdminCommand::Audit(AuditCommand::Tail { limit }) => {
            if !(1..=10_000).contains(&limit) {
                bail!("--limit must be between 1 and 10000");
            }
            for e in state.store.list_audit_events(None, None, limit).await?.into_iter().rev() {
                println!(
                    "{:>6} {} {:<24} {:<8} actor={} target={} ip={} {}",
                    e.seq,
                    e.at_ms,
                    e.action,
                    e.outcome,
                    e.actor_id.as_deref().unwrap_or("-"),
                    e.target.as_deref().unwrap_or("-"),
                    e.source_ip.as_deref().unwrap_or("-"),
                    e.detail
                );
            }
        }
    }
    Ok(())
}

fn limit_text(policy: &OrgPolicy) -> String {
    policy.meeting_time_limit_minutes.value.map_or("none".to_owned(), |m| format!("{m} minutes"))
}

async fn user_command(state: &SharedState, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::List => {
            for (org, _) in state.store.list_orgs().await? {
                for u in state.store.list_org_members(&org.id).await? {
                    let role = u.role.map_or("-", |r| r.as_str());
                    let two_factor = if u.totp_secret.is_some() { "2fa" } else { "-" };
                    println!(
                        "{:<36} {:<32} {:<8} {:<11} {two_factor:<3} {}",
                        u.id,
                        u.email,
                        role,
                        format!("{:?}", u.status).to_lowercase(),
                        org.name
                    );
                }
            }
        }
        UserCommand::Deactivate { email } => {
            let user = user_by_email(state, &email).await?;
            // Everything stored is closed here: sessions, conversations,
            // invitations. This process holds no live connection, so seats in
            // meetings a running server hosts end only when that server
            // closes the account (its API or SCIM do it everywhere at once).
            let closed = conclave_server::offboarding::close_account(state, &user.id).await?;
            let detail = format!("via conclave admin: {}", closed.describe());
            audit(state, AuditAction::OrgMemberDeactivate, user.org_id.as_deref(), Some(&user.id), &detail).await?;
            println!("{} deactivated; {}", user.email, closed.describe());
        }
        UserCommand::Reactivate { email } => {
            let user = user_by_email(state, &email).await?;
            state.store.reactivate_user(&user.id, state.now_ms()).await?;
            audit(
                state,
                AuditAction::OrgMemberReactivate,
                user.org_id.as_deref(),
                Some(&user.id),
                "via conclave admin",
            )
            .await?;
            println!("{} is active again", user.email);
        }
        UserCommand::Reset2fa { email } => {
            let user = user_by_email(state, &email).await?;
            state.store.disable_totp(&user.id).await?;
            let passkeys = state.store.delete_all_passkeys(&user.id).await?;
            let detail = format!("via conclave admin; {passkeys} passkeys removed");
            audit(state, AuditAction::Auth2faReset, user.org_id.as_deref(), Some(&user.id), &detail).await?;
            println!("two-factor turned off and {passkeys} passkeys removed for {}", user.email);
        }
        UserCommand::SweepDormant => {
            let n = accounts::sweep_dormant_accounts(state).await?;
            println!("{n} dormant accounts disabled");
        }
    }
    Ok(())
}
