//! MLS costs per client in a channel of 100 and of 1,000 people with two
//! devices each (200 and 2,000 leaves): `cargo bench -p conclave-e2ee
//! --bench mls`. A person joining (one commit adding both devices: made by
//! the committer, processed by every other device, and each new device's
//! Welcome), a person leaving (one commit removing both), and a message
//! sealed by one device and opened by another. Median of 5.

use std::time::{Duration, Instant};

use conclave_e2ee::mls::{GroupMember, OpenMlsMember};

const DEVICES_PER_PERSON: usize = 2;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(v: Vec<Duration>) -> String {
    format!("{:.1} ms", median(v).as_secs_f64() * 1e3)
}

fn us(v: Vec<Duration>) -> String {
    format!("{:.0} µs", median(v).as_secs_f64() * 1e6)
}

fn main() {
    println!(
        "| people × devices (leaves) | join: commit create (committer) | join: commit process (each device) \
         | join: Welcome (each new device) | Welcome size | leave: commit create | leave: commit process | message seal | message open |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for people in [100usize, 1000] {
        let leaves = people * DEVICES_PER_PERSON;
        let mut committer = OpenMlsMember::new(b"committer").unwrap();
        committer.create_group(format!("bench-{people}").as_bytes(), None).unwrap();
        let mut witness = OpenMlsMember::new(b"witness").unwrap();
        let mut packages = vec![witness.key_package().unwrap()];
        for i in 0..leaves - 2 {
            packages.push(OpenMlsMember::new(format!("d{i}").as_bytes()).unwrap().key_package().unwrap());
        }
        let setup = committer.add(&packages).unwrap();
        committer.confirm_commit().unwrap();
        witness.join(&setup.welcome.unwrap()).unwrap();
        assert_eq!(committer.members().len(), leaves);

        let (mut create, mut process, mut welcome) = (Vec::new(), Vec::new(), Vec::new());
        let mut welcome_bytes_len = 0;
        let (mut leave_create, mut leave_process, mut seal, mut open) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 0..5 {
            // A person joins with both devices in one commit.
            let mut newcomers: Vec<OpenMlsMember> = (0..DEVICES_PER_PERSON)
                .map(|d| OpenMlsMember::new(format!("new{round}.{d}").as_bytes()).unwrap())
                .collect();
            let kps: Vec<Vec<u8>> = newcomers.iter().map(|n| n.key_package().unwrap()).collect();
            let t = Instant::now();
            let commit = committer.add(&kps).unwrap();
            committer.confirm_commit().unwrap();
            create.push(t.elapsed());
            let t = Instant::now();
            witness.process(&commit.commit, &mut |_| Ok(())).unwrap();
            process.push(t.elapsed());
            let welcome_bytes = commit.welcome.unwrap();
            welcome_bytes_len = welcome_bytes.len();
            for newcomer in &mut newcomers {
                let t = Instant::now();
                newcomer.join(&welcome_bytes).unwrap();
                welcome.push(t.elapsed());
            }

            // A message in the group that size.
            let t = Instant::now();
            let sealed = committer.encrypt(b"a message of about the length people type in a channel").unwrap();
            seal.push(t.elapsed());
            let t = Instant::now();
            witness.process(&sealed, &mut |_| Ok(())).unwrap();
            open.push(t.elapsed());

            // The same person leaves: both devices removed in one commit.
            let gone: Vec<u32> = newcomers.iter().map(|n| n.leaf_index().unwrap()).collect();
            let t = Instant::now();
            let commit = committer.remove(&gone).unwrap();
            committer.confirm_commit().unwrap();
            leave_create.push(t.elapsed());
            let t = Instant::now();
            witness.process(&commit.commit, &mut |_| Ok(())).unwrap();
            leave_process.push(t.elapsed());
        }
        println!(
            "| {people} × {DEVICES_PER_PERSON} ({leaves}) | {} | {} | {} | {} KiB | {} | {} | {} | {} |",
            ms(create),
            ms(process),
            ms(welcome),
            welcome_bytes_len / 1024,
            ms(leave_create),
            ms(leave_process),
            us(seal),
            us(open)
        );
    }
}
