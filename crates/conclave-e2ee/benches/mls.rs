//! MLS costs per client in meetings of 100 and 1,000 members:
//! `cargo bench -p conclave-e2ee --bench mls`. A commit adding one member
//! (made by the committer, processed by every other member) and the
//! newcomer's Welcome. Median of 5.

use std::time::{Duration, Instant};

use conclave_e2ee::mls::{GroupMember, OpenMlsMember};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    println!("| members | commit create (committer) | commit process (each member) | Welcome processing (newcomer) |");
    println!("|---|---|---|---|");
    for size in [100usize, 1000] {
        let mut host = OpenMlsMember::new(b"host").unwrap();
        host.create_group(format!("bench-{size}").as_bytes()).unwrap();
        let mut witness = OpenMlsMember::new(b"witness").unwrap();
        let mut packages = vec![witness.key_package().unwrap()];
        for i in 0..size - 2 {
            packages.push(OpenMlsMember::new(format!("m{i}").as_bytes()).unwrap().key_package().unwrap());
        }
        let setup = host.add(&packages).unwrap();
        host.confirm_commit().unwrap();
        witness.join(&setup.welcome.unwrap()).unwrap();
        let (mut create, mut process, mut welcome) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..5 {
            let mut newcomer = OpenMlsMember::new(format!("new{i}").as_bytes()).unwrap();
            let kp = newcomer.key_package().unwrap();
            let t = Instant::now();
            let commit = host.add(&[kp]).unwrap();
            host.confirm_commit().unwrap();
            create.push(t.elapsed());
            let t = Instant::now();
            witness.process(&commit.commit, &mut |_| Ok(())).unwrap();
            process.push(t.elapsed());
            let t = Instant::now();
            newcomer.join(&commit.welcome.unwrap()).unwrap();
            welcome.push(t.elapsed());
        }
        println!(
            "| {} | {:.1} ms | {:.1} ms | {:.1} ms |",
            host.members().len(),
            median(create).as_secs_f64() * 1e3,
            median(process).as_secs_f64() * 1e3,
            median(welcome).as_secs_f64() * 1e3
        );
    }
}
