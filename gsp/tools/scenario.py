"""The demo's story, as data: who publishes what through which intake, who subscribes to what through which channel.

The seed's programme connected the population database with ministries, provinces, three telecom
carriers and EVN. Here: the registry (SQL) and its change events (a Debezium-style outbox table), three
carriers (SQL, one table each), EVN's customers (SQL) and Vietnam Social Security's participants (files
dropped in a directory) are the sources; four ministries, two provinces (row filters by province) and
the national public service portal subscribe, each with its own approval, one subscription per
delivery channel at least: an SQL sink, a signed webhook, the HTTP pull feed and the Kafka topic itself.
Nothing here is code a deployment needs; a test reads it to know what the demo must show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["AGENCIES", "INTAKE", "SUBSCRIPTIONS", "Agency", "Channel", "Intake", "Request"]

Channel = Literal["sql", "webhook", "pull", "kafka"]
Intake = Literal["sql", "file", "outbox"]


@dataclass(frozen=True)
class Agency:
    id: str    # X-Road style subsystem id
    name: str


@dataclass(frozen=True)
class Request:
    """A subscription an agency asks for, and how it receives it."""
    agency: str
    dataset: str
    fields: list[str]
    purpose: str
    legal_basis: str
    channel: Channel
    row_filter: dict[str, list[str]] = field(default_factory=dict)
    verdicts: list[str] | None = None   # linked datasets: None is MATCHED only


AGENCIES = {a.id: a for a in (
    Agency("VN/GOV/bo-cong-an/c06", "Cục Cảnh sát quản lý hành chính về trật tự xã hội (C06), Bộ Công an"),
    Agency("VN/GOV/bo-khoa-hoc-va-cong-nghe/cuc-vien-thong", "Cục Viễn thông, Bộ Khoa học và Công nghệ"),
    Agency("VN/GOV/bo-cong-thuong/evn", "Tập đoàn Điện lực Việt Nam (EVN)"),
    Agency("VN/GOV/bao-hiem-xa-hoi-viet-nam/csdl-bhxh", "Bảo hiểm xã hội Việt Nam, Bộ Tài chính"),
    Agency("VN/GOV/bo-cong-thuong/cuc-dien-luc", "Cục Điện lực, Bộ Công Thương"),
    Agency("VN/GOV/bo-y-te/vu-bao-hiem-y-te", "Vụ Bảo hiểm y tế, Bộ Y tế"),
    Agency("VN/GOV/ubnd-ha-noi/trung-tam-du-lieu", "Trung tâm Dữ liệu, UBND Thành phố Hà Nội"),
    Agency("VN/GOV/ubnd-tp-hcm/trung-tam-du-lieu", "Trung tâm Dữ liệu, UBND Thành phố Hồ Chí Minh"),
    Agency("VN/GOV/van-phong-chinh-phu/cong-dvc-quoc-gia", "Cổng Dịch vụ công quốc gia, Văn phòng Chính phủ"),
)}

# Source table (as the generator names it) -> how its rows reach the platform.
INTAKE: dict[str, Intake] = {
    "citizen": "sql",
    "population_event": "outbox",
    "subscriber_viettel": "sql",
    "subscriber_vinaphone": "sql",
    "subscriber_mobifone": "sql",
    "evn_customer": "sql",
    "bhxh_participant": "file",
}

_IDENTITY_LAW = "Luật Căn cước 2023"
SUBSCRIPTIONS: list[Request] = [
    Request("VN/GOV/bo-cong-an/c06", "telecom.subscriber",
            ["msisdn", "carrier", "personal_id", "subscriber_name", "verdict"],
            "Đối soát thông tin thuê bao di động với Cơ sở dữ liệu quốc gia về dân cư",
            f"{_IDENTITY_LAW}; Luật Viễn thông 2023 (xác thực thông tin thuê bao)", "sql",
            row_filter={"carrier": ["Viettel", "VinaPhone"]}),
    Request("VN/GOV/bao-hiem-xa-hoi-viet-nam/csdl-bhxh", "population.event",
            ["event_code", "event_type", "event_date", "personal_id", "full_name"],
            "Dừng chi trả lương hưu, trợ cấp bảo hiểm xã hội khi người hưởng qua đời",
            f"Luật Bảo hiểm xã hội 2024; {_IDENTITY_LAW}", "webhook",
            row_filter={"event_type": ["DEATH"]}),
    Request("VN/GOV/bo-cong-thuong/cuc-dien-luc", "electricity.customer",
            ["customer_code", "holder_name", "personal_id", "province_code", "verdict"],
            "Xác thực chủ hợp đồng mua bán điện sinh hoạt",
            f"Luật Điện lực 2024; {_IDENTITY_LAW}", "pull"),
    Request("VN/GOV/bo-y-te/vu-bao-hiem-y-te", "insurance.participant",
            ["insurance_code", "personal_id", "full_name", "birth_date", "verdict"],
            "Đồng bộ thẻ bảo hiểm y tế với số định danh cá nhân",
            f"Luật Bảo hiểm y tế (sửa đổi 2024); {_IDENTITY_LAW}", "sql"),
    Request("VN/GOV/ubnd-ha-noi/trung-tam-du-lieu", "population.event",
            ["event_code", "event_type", "event_date", "personal_id", "full_name", "province_code", "ward_code",
             "previous_province_code"],
            "Cập nhật dân cư chuyển đến thường trú trên địa bàn Thành phố",
            f"Luật Cư trú 2020; {_IDENTITY_LAW}", "pull",
            row_filter={"event_type": ["MOVE"], "province_code": ["01"]}),
    Request("VN/GOV/ubnd-tp-hcm/trung-tam-du-lieu", "insurance.participant",
            ["insurance_code", "full_name", "employer", "province_code", "verdict"],
            "Theo dõi lao động tham gia bảo hiểm xã hội trên địa bàn Thành phố",
            f"Luật Bảo hiểm xã hội 2024; {_IDENTITY_LAW}", "webhook",
            row_filter={"province_code": ["79"]}),
    Request("VN/GOV/van-phong-chinh-phu/cong-dvc-quoc-gia", "electricity.customer",
            ["customer_code", "personal_id", "holder_name", "meter_address"],
            "Điền sẵn thông tin hợp đồng điện trên biểu mẫu dịch vụ công trực tuyến",
            f"Nghị định 45/2020/NĐ-CP (thủ tục hành chính trên môi trường điện tử); {_IDENTITY_LAW}", "kafka"),
]
