"""Dreamscape: program schema, checks, curator (intake → program), controller (pure state machine), renderer."""
