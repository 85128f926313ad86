//! A Redis server of a test's own, so that the test can stop it.

use std::process::{Child, Command, Stdio};

/// A Redis server on a port the OS picks (`redis-server` from the PATH). Killed when dropped.
#[must_use = "the server is killed when this is dropped"]
#[derive(Debug)]
pub struct OwnRedis {
    /// The server process.
    pub child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl OwnRedis {
    /// Starts the server; an error if no port is free or `redis-server` cannot be run.
    pub fn start() -> std::io::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()?;
        Ok(Self { child, port })
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
