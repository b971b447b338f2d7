"""The application's model: the tables as SQLAlchemy classes, which autogenerate compares with the database."""
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Every constraint and index gets a name from these patterns, so each revision writes the
# name down and a later one can drop it by that name. A name you write yourself in a revision
# goes through op.f("...") so the pattern is not applied to it a second time.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Your tables go here, for example:
#
# from sqlalchemy import String
# from sqlalchemy.orm import Mapped, mapped_column
#
# class User(Base):
#     __tablename__ = "users"
#
#     id: Mapped[int] = mapped_column(primary_key=True)
#     name: Mapped[str] = mapped_column(String(100))
