//! Email, through the organisation's SMTP server: STARTTLS (or implicit
//! TLS) with the system's roots (plus an operator-given CA for a private
//! relay), authenticated when a user name is set. Every message is plain
//! text with an HTML alternative that loads nothing from anywhere: no
//! remote images, no tracking pixels, no links but the one it is about.
//!
//! Without SMTP settings the server sends no email, and flows that would
//! (a password reset) are refused plainly rather than silently dropped.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, required (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    /// A CA to trust besides the system's (a private relay's).
    pub ca_file: Option<PathBuf>,
    /// `Conclave <noreply@example.org>`.
    pub from: String,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("this server sends no email (no SMTP server is configured)")]
    NotConfigured,
    #[error("the SMTP settings are not usable: {0}")]
    Settings(String),
    #[error("the address {0:?} cannot receive email")]
    Address(String),
    #[error("the SMTP server did not take the message: {0}")]
    Delivery(String),
}

/// One email: a subject, the text, and the one link it is about.
pub struct Email<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    /// Paragraphs of plain text.
    pub paragraphs: &'a [&'a str],
    /// The action, as (label, URL).
    pub action: Option<(&'a str, &'a str)>,
    /// A calendar invitation it carries: shown by mail clients as one (a
    /// `text/calendar` alternative) and attached as `invite.ics`.
    pub calendar: Option<(crate::calendar::Method, &'a str)>,
}

pub struct Mailer {
    transport: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
}

impl Mailer {
    /// A mailer that sends nothing.
    pub fn disabled() -> Self {
        Self { transport: None }
    }

    pub fn new(config: &SmtpConfig) -> Result<Self, MailError> {
        let settings = |e: &dyn std::fmt::Display| MailError::Settings(e.to_string());
        let mut tls = TlsParameters::builder(config.host.clone());
        if let Some(ca) = &config.ca_file {
            let pem = std::fs::read(ca).map_err(|e| settings(&format!("{}: {e}", ca.display())))?;
            tls = tls.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| settings(&e))?);
        }
        let tls = tls.build_rustls().map_err(|e| settings(&e))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .timeout(Some(Duration::from_secs(20)))
            .tls(match config.security {
                SmtpSecurity::StartTls => Tls::Required(tls),
                SmtpSecurity::Tls => Tls::Wrapper(tls),
            });
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let from: Mailbox = config.from.parse().map_err(|_| MailError::Address(config.from.clone()))?;
        Ok(Self { transport: Some((builder.build(), from)) })
    }

    pub fn is_enabled(&self) -> bool {
        self.transport.is_some()
    }

    pub async fn send(&self, email: &Email<'_>) -> Result<(), MailError> {
        let (transport, from) = self.transport.as_ref().ok_or(MailError::NotConfigured)?;
        // `.invalid` never resolves (RFC 2606): the address of an account
        // provisioned without one.
        if email.to.to_ascii_lowercase().ends_with(".invalid") {
            return Err(MailError::Address(email.to.to_owned()));
        }
        let to: Mailbox = email.to.parse().map_err(|_| MailError::Address(email.to.to_owned()))?;
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(email.subject)
            .multipart(body(email)?)
            .map_err(|e| MailError::Settings(e.to_string()))?;
        transport.send(message).await.map_err(|e| MailError::Delivery(e.to_string()))?;
        Ok(())
    }
}

fn body(email: &Email<'_>) -> Result<MultiPart, MailError> {
    let alternatives = MultiPart::alternative().singlepart(text_part(email)).singlepart(html_part(email));
    let Some((method, ics)) = email.calendar else { return Ok(alternatives) };
    let invitation = ContentType::parse(&format!("text/calendar; charset=utf-8; method={}", method.as_str()))
        .map_err(|e| MailError::Settings(e.to_string()))?;
    let attachment = ContentType::parse("application/ics").map_err(|e| MailError::Settings(e.to_string()))?;
    Ok(MultiPart::mixed()
        .multipart(alternatives.singlepart(SinglePart::builder().header(invitation).body(ics.to_owned())))
        .singlepart(lettre::message::Attachment::new("invite.ics".into()).body(ics.to_owned(), attachment)))
}

fn text_part(email: &Email<'_>) -> SinglePart {
    let mut text = email.paragraphs.join("\n\n");
    if let Some((label, url)) = email.action {
        text.push_str(&format!("\n\n{label}: {url}\n"));
    }
    text.push_str("\n-- \nConclave\n");
    SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text)
}

fn html_part(email: &Email<'_>) -> SinglePart {
    SinglePart::builder().header(ContentType::TEXT_HTML).body(html_body(email))
}

/// The same words as HTML: inline styles only, nothing loaded from
/// anywhere.
fn html_body(email: &Email<'_>) -> String {
    let mut html = String::from("<!doctype html><html><body style=\"font-family:sans-serif;max-width:36em\">");
    for paragraph in email.paragraphs {
        html.push_str(&format!("<p>{}</p>", escape(paragraph)));
    }
    if let Some((label, url)) = email.action {
        html.push_str(&format!("<p><a href=\"{}\">{}</a></p>", escape(url), escape(label)));
    }
    html.push_str("<p style=\"color:#666\">Conclave</p></body></html>");
    html
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_loads_nothing() {
        let email = Email {
            to: "a@example.org",
            subject: "s",
            paragraphs: &["<script>alert(1)</script> & \"quotes\""],
            action: Some(("Open", "https://conclave.example/x?a=1&b=\"2\"")),
            calendar: None,
        };
        let html = html_body(&email);
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
        assert!(!html.contains("<img") && !html.contains("src="), "nothing loaded from anywhere");
        assert!(html.contains("href=\"https://conclave.example/x?a=1&amp;b=&quot;2&quot;\""));
    }
}
