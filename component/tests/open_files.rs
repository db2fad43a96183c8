//! The soft open-file limit is raised to the hard one at start (issue 20: under the common
//! soft limit of 1,024, forty addresses exhausted the descriptors and `/healthz` went dark).
//! Its own test binary: it changes the limit of the whole process.

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
    let low = hard.min(256);
    rlimit::Resource::NOFILE.set(low, hard).unwrap();
    let now = xmpp_upload_component::ops::raise_open_files_limit();
    assert_eq!(now, Some(hard));
    assert_eq!(rlimit::Resource::NOFILE.get().unwrap(), (hard, hard));
}
