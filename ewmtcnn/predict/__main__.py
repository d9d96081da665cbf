"""`python -m ewmtcnn.predict IMAGE...`: the `ewmtcnn-predict` command."""

from ewmtcnn.predict import main

main()
