"""The recorder role in the gateway: drives ``recorder.CameraRecorder`` for
every camera, keeps the archive's index in the database, marks event clips,
sweeps retention and guards the disk's free-space floor."""
