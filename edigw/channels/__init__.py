"""Where files come from and go to: local folders and SFTP, behind one small interface."""
