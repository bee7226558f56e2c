//! A real S3-compatible server for tests: moto's standalone server (PyPI's
//! `moto[server]`, which `cargo xtask test` installs), started on loopback
//! by the test that needs it and stopped when dropped. Its objects are read
//! back over plain S3 requests, as an auditor of the bucket would.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use object_store::ObjectStore;

use crate::Bucket;

/// The credentials moto accepts (any); a bucket's settings use these.
pub const ACCESS_KEY_ID: &str = "conclave-test";
pub const SECRET_ACCESS_KEY: &str = "conclave-test-secret";
pub const REGION: &str = "eu-central-1";

pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    http: reqwest::Client,
}

impl S3Server {
    /// Starts moto on a free port; fails loudly when it is not installed.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let spawn = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        };
        let child = spawn("moto_server", &[]).or_else(|_| spawn("python3", &["-m", "moto.server"])).expect(
            "moto's S3 server is not installed: `cargo xtask test` installs it, or `pip install 'moto[server]'`",
        );
        let address: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "moto's S3 server did not start on {address}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, endpoint: format!("http://{address}"), http: reqwest::Client::new() }
    }

    /// Creates a bucket (moto takes unsigned requests).
    pub async fn create_bucket(&self, name: &str) {
        let response = self.http.put(format!("{}/{name}", self.endpoint)).send().await.expect("moto answers");
        assert!(response.status().is_success(), "creating bucket {name}: {}", response.status());
    }

    /// A bucket's settings as an organisation gives them.
    pub fn bucket(&self, name: &str) -> Bucket {
        Bucket {
            endpoint: Some(self.endpoint.clone()),
            region: REGION.into(),
            name: name.into(),
            access_key_id: ACCESS_KEY_ID.into(),
            secret_access_key: SECRET_ACCESS_KEY.into(),
        }
    }

    /// Every object's key in a bucket, in order (read as an auditor of
    /// the bucket would, with its credentials).
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        use futures::TryStreamExt;
        let listed: Vec<_> = self.store(bucket).list(None).try_collect().await.expect("the bucket lists");
        let mut keys: Vec<String> = listed.into_iter().map(|o| o.location.to_string()).collect();
        keys.sort();
        keys
    }

    /// Every object's bytes, as the bucket is now (an object deleted
    /// between listing and reading is left out).
    pub async fn objects(&self, bucket: &str) -> Vec<(String, Vec<u8>)> {
        let mut objects = Vec::new();
        for key in self.keys(bucket).await {
            let path = object_store::path::Path::from(key.as_str());
            match self.store(bucket).get(&path).await {
                Ok(got) => objects.push((key, got.bytes().await.expect("the object").to_vec())),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => panic!("reading {bucket}/{key}: {e}"),
            }
        }
        objects
    }

    /// One object's bytes.
    pub async fn object(&self, bucket: &str, key: &str) -> Vec<u8> {
        let path = object_store::path::Path::from(key);
        let got = self.store(bucket).get(&path).await.unwrap_or_else(|e| panic!("reading {bucket}/{key}: {e}"));
        got.bytes().await.expect("the object").to_vec()
    }

    fn store(&self, bucket: &str) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region(REGION)
            .with_bucket_name(bucket)
            .with_access_key_id(ACCESS_KEY_ID)
            .with_secret_access_key(SECRET_ACCESS_KEY)
            .build()
            .expect("a client for the test bucket")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
