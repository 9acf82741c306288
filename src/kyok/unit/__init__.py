"""The crypto unit: kyok's HSM boundary. The only code that ever holds master keys or root-key
material. See :mod:`kyok.unit.unit` for the unit and its registers, :mod:`kyok.unit.ceremony` for
the rules of the key ceremony, and :mod:`kyok.unit.transcript` for the verifiable record."""
